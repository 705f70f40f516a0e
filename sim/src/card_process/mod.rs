//! The card as a device process: `offcard card --socket PATH`.
//!
//! The Verilated card, with the root-complex model as its PCIe side, served
//! over **vfio-user** (rust-vmm's `vfio_user::Server`), so any vfio-user
//! client (our driver's `VfioUserTransport`, QEMU, cloud-hypervisor) can
//! attach it the way it attaches a physical function through VFIO:
//!
//! - region 7 (configuration space) and region 0 (BAR0) become
//!   configuration and memory TLPs to the card; BAR0/BAR1 and the MSI
//!   address/data are virtualized as vfio-pci does (the process, acting as
//!   the root port, placed BAR0 and programmed the MSI vector itself);
//! - DMA_MAP maps the client's memory file descriptor, so the card's DMA
//!   reads and writes the client's memory directly at the IOVA the client
//!   gave; an IOVA that is not mapped gets an Unsupported Request completion
//!   (reads) or is dropped (writes), is counted, and touches no memory;
//! - the card's MSI is signalled on the eventfd from SET_IRQS (MSI index);
//! - region 9 is the simulation status ([`offcard_regs::sim_status`]).
//!
//! One client at a time: a second client gets an error reply (EBUSY) and is
//! closed. When a client goes away (closes, dies mid-transfer), its DMA
//! mappings and interrupts are dropped and the card is reset, so the next
//! client finds a fresh card. The card is clocked all the time by its own
//! thread (slowed down when nothing happens), and its Ethernet port is
//! pumped to a TAP, a wire or nowhere (`port`).

pub mod backend;
pub mod port;

use crate::{CardModel, RootComplex, SIM_BAR0_ADDR};
use backend::CardBackend;
use port::{EthernetPort, PcapTap};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What `offcard card` was asked to do.
#[derive(Debug, Clone)]
pub struct CardProcessOptions {
    pub socket: PathBuf,
    /// `tap:NAME` or `wire:PATH`; none: frames the card sends are counted and dropped.
    pub net: Option<String>,
    pub pcap: Option<PathBuf>,
    /// Seed of the root port's stream timing.
    pub seed: u64,
    /// Serve this many clients, then exit (0: forever).
    pub max_clients: usize,
    pub quiet: bool,
}

/// Frames waiting to enter the card beyond this are dropped and counted (a
/// real port's receive FIFO overflows the same way).
const PORT_RX_QUEUE: usize = 64;
/// Cycles the clock thread runs between looks at the port and the client.
const CHUNK_CYCLES: u64 = 256;
/// After this many quiet cycles the clock slows down.
const QUIET_CYCLES: u64 = 200_000;

/// Everything the card process owns, behind one lock.
pub struct CardState {
    pub rc: RootComplex,
    pub irq_fds: Vec<File>,
    msi_delivered: u64,
    pub port: Option<Box<dyn EthernetPort>>,
    pub pcap: Option<PcapTap>,
    pub port_tx: u64,
    pub port_rx: u64,
    pub port_rx_dropped: u64,
    pub port_tx_errors: u64,
    /// Every IOMMU fault since start: (IOVA, is_write); the count is its length.
    pub faults_total: u64,
    pub fault_log: Vec<(u64, bool)>,
    seed: u64,
    cycle_offset: u64,
    last_activity: u64,
    activity_sig: (u64, u64, u64, usize),
}

impl CardState {
    fn new(seed: u64) -> std::io::Result<CardState> {
        let rc = fresh_card(seed, crate::HostMemory::new(4096)?)?;
        Ok(CardState {
            rc,
            irq_fds: Vec::new(),
            msi_delivered: 0,
            port: None,
            pcap: None,
            port_tx: 0,
            port_rx: 0,
            port_rx_dropped: 0,
            port_tx_errors: 0,
            faults_total: 0,
            fault_log: Vec::new(),
            seed,
            cycle_offset: 0,
            last_activity: 0,
            activity_sig: (0, 0, 0, 0),
        })
    }

    /// Function-level reset: a fresh card behind the same IOMMU mappings,
    /// enumerated again by the root port.
    pub fn reset(&mut self) -> std::io::Result<()> {
        // What the old card did last (MSIs, refused accesses) is still reported.
        self.deliver_interrupts();
        let mem = std::mem::replace(&mut self.rc.mem, crate::HostMemory::new(4096)?);
        // Simulated time goes on across resets (drivers measure with it).
        self.cycle_offset += self.rc.card.cycles();
        self.rc = fresh_card(self.seed, mem)?;
        self.msi_delivered = self.rc.msi_count();
        self.last_activity = 0;
        Ok(())
    }

    /// Card clock cycles since the process started (across resets).
    pub fn cycles(&self) -> u64 {
        self.cycle_offset + self.rc.card.cycles()
    }

    /// A client went away: forget its memory and interrupts, reset the card.
    pub fn detach(&mut self) -> std::io::Result<()> {
        self.irq_fds.clear();
        self.rc.mem.dma_unmap_all();
        self.reset()
    }

    /// Signal MSIs the card sent since the last call on the client's eventfd.
    pub fn deliver_interrupts(&mut self) {
        let n = self.rc.msi_count();
        if n > self.msi_delivered {
            self.msi_delivered = n;
            if let Some(f) = self.irq_fds.first() {
                // An eventfd counts: one write of 1 wakes the waiter.
                // SAFETY: writes 8 bytes from a valid u64 to the eventfd.
                unsafe { libc::write(f.as_raw_fd(), &1u64 as *const u64 as *const _, 8) };
            }
        }
        for f in self.rc.iommu_faults.drain(..) {
            self.faults_total += 1;
            self.fault_log.push(f);
        }
        if self.fault_log.len() > 4 * offcard_regs::sim_status::FAULT_SLOTS as usize {
            let keep = self.fault_log.len() - offcard_regs::sim_status::FAULT_SLOTS as usize;
            self.fault_log.drain(..keep);
        }
    }

    /// Move frames between the card's port and the outside.
    fn pump_port(&mut self) -> std::io::Result<()> {
        let cycle = self.cycles();
        if let Some(port) = &mut self.port {
            port.poll_out()?;
        }
        for f in std::mem::take(&mut self.rc.net.from_card) {
            self.port_tx += 1;
            if let Some(p) = &mut self.pcap {
                p.frame(cycle, &f.bytes)?;
            }
            if let Some(port) = &mut self.port {
                if let Err(e) = port.send(&f.bytes) {
                    self.port_tx_errors += 1;
                    if self.port_tx_errors == 1 {
                        eprintln!("offcard card: port send: {e} (frames are dropped and counted)");
                    }
                }
            }
        }
        if let Some(port) = &mut self.port {
            // At most a queue's worth per pump, so a flooded port cannot
            // keep the card locked away from the client.
            for _ in 0..PORT_RX_QUEUE {
                let Some(f) = port.recv()? else { break };
                if self.rc.net.to_card.len() >= PORT_RX_QUEUE || f.is_empty() {
                    self.port_rx_dropped += 1;
                    continue;
                }
                self.port_rx += 1;
                if let Some(p) = &mut self.pcap {
                    p.frame(cycle, &f)?;
                }
                self.rc.net.to_card.push_back(crate::NetFrame::new(f));
            }
        }
        Ok(())
    }

    /// Cycles since the card last did anything visible.
    fn quiet_cycles(&mut self) -> u64 {
        let s = &self.rc.stats;
        let sig = (s.tlps_received, s.tlps_sent, self.port_tx + self.port_rx, self.rc.net.to_card.len() + self.rc.pending_to_card());
        let now = self.rc.card.cycles();
        if sig != self.activity_sig || sig.3 > 0 {
            self.activity_sig = sig;
            self.last_activity = now;
        }
        now - self.last_activity
    }
}

fn fresh_card(seed: u64, mem: crate::HostMemory) -> std::io::Result<RootComplex> {
    let mut rc = RootComplex::with_card(CardModel::new(), seed, 4096)?;
    rc.mem = mem;
    rc.enumerate(SIM_BAR0_ADDR).map_err(|e| std::io::Error::other(format!("enumerating the card: {e}")))?;
    Ok(rc)
}

/// The lock on the card, and a way for the client's thread to get it ahead
/// of the clock thread (which takes it again right after each chunk).
pub struct Shared {
    state: Mutex<CardState>,
    waiting: AtomicUsize,
    pub shutdown: AtomicBool,
    epoch: Instant,
    /// When the client last made a request, in ms since `epoch`.
    last_request_ms: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, CardState> {
        self.last_request_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // The clock thread lets go within a cycle of the model once it sees
        // `waiting`: spin for it rather than sleep on the futex and pay a
        // wake-up on every MMIO.
        let t0 = Instant::now();
        let g = loop {
            match self.state.try_lock() {
                Ok(g) => break g,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if t0.elapsed() < Duration::from_millis(2) => std::hint::spin_loop(),
                Err(std::sync::TryLockError::WouldBlock) => break self.state.lock().unwrap_or_else(|p| p.into_inner()),
            }
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        g
    }
}

fn clock_thread(shared: Arc<Shared>) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        let quiet = {
            // try_lock and yield rather than sleep on the futex: the
            // client's thread then unlocks without a wake-up call.
            let mut st = loop {
                match shared.state.try_lock() {
                    Ok(g) => break g,
                    Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
                }
            };
            // Stop early when the client's thread wants the card: an MMIO
            // waits at most one cycle of the model for the lock.
            for _ in 0..CHUNK_CYCLES {
                if shared.waiting.load(Ordering::Relaxed) > 0 {
                    break;
                }
                st.rc.step();
            }
            if let Err(e) = st.pump_port() {
                eprintln!("offcard card: port: {e}");
            }
            st.deliver_interrupts();
            st.quiet_cycles()
        };
        // Let the client's thread in; slow down when nothing happens (the
        // card's time still advances, for drivers that wait on it).
        while shared.waiting.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
        // Only when no client has asked anything for a while: a driver that
        // waits counts its timeout in card cycles and reads the clock.
        let client_quiet = shared.epoch.elapsed().as_millis() as u64 - shared.last_request_ms.load(Ordering::Relaxed) > 100;
        if quiet > QUIET_CYCLES && client_quiet {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Answer a connection while another client is attached: an error reply
/// (EBUSY) to its first message, then close.
fn refuse_busy(mut s: UnixStream) {
    use std::io::{Read, Write};
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut h = [0u8; 16];
    let got = s.read(&mut h).unwrap_or(0);
    let (id, cmd) = if got >= 4 { ([h[0], h[1]], [h[2], h[3]]) } else { ([0, 0], [1, 0]) };
    let mut reply = Vec::with_capacity(16);
    reply.extend_from_slice(&id);
    reply.extend_from_slice(&cmd);
    reply.extend_from_slice(&16u32.to_le_bytes());
    reply.extend_from_slice(&(1u32 | 1 << 5).to_le_bytes()); // Reply | Error
    reply.extend_from_slice(&(libc::EBUSY as u32).to_le_bytes());
    let _ = s.write_all(&reply);
}

/// Watch the listening socket while a client is attached: a connection
/// still pending after a grace period means the server is busy serving.
fn busy_watch(listener: UnixListener, serving: Arc<AtomicBool>, shared: Arc<Shared>, refused: Arc<AtomicUsize>) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        if !port::poll_readable(listener.as_raw_fd(), Duration::from_millis(50)) {
            continue;
        }
        // The server thread takes a connection at once when it is free.
        std::thread::sleep(Duration::from_millis(100));
        if !serving.load(Ordering::SeqCst) || !port::poll_readable(listener.as_raw_fd(), Duration::ZERO) {
            continue;
        }
        if let Ok((s, _)) = listener.accept() {
            let _ = s.set_nonblocking(false);
            refused.fetch_add(1, Ordering::SeqCst);
            refuse_busy(s);
        }
    }
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on (the handler only sets a flag).
/// Installed before the socket or the wire's end exists: whoever sees them
/// may signal at once, and the default action would leave them behind.
fn install_signal_handlers() {
    // SAFETY: installs an async-signal-safe handler (it stores to an atomic).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

/// SIGINT or SIGTERM: flush the pcap, remove the socket and the wire's end,
/// exit. (A thread does it; the handler only sets a flag.)
fn watch_signals(shared: Arc<Shared>, socket: PathBuf) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        if SIGNALLED.load(Ordering::SeqCst) {
            shared.shutdown.store(true, Ordering::SeqCst);
            {
                let mut st = shared.lock();
                if let Some(p) = &mut st.pcap {
                    let _ = p.flush();
                }
                st.port.take(); // a wire end removes its file when dropped
            }
            let _ = std::fs::remove_file(&socket);
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run the card process until `max_clients` clients have come and gone (or
/// forever). The socket file is removed when it returns.
pub fn serve(opts: &CardProcessOptions) -> std::io::Result<()> {
    let say = |m: String| {
        if !opts.quiet {
            eprintln!("offcard card: {m}");
        }
    };
    if let Ok(meta) = std::fs::symlink_metadata(&opts.socket) {
        use std::os::unix::fs::FileTypeExt;
        // Only a socket file nobody accepts on (left over from a card process
        // that died) is taken over; anything else is the user's.
        let stale = meta.file_type().is_socket()
            && matches!(UnixStream::connect(&opts.socket), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
        if !stale {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} exists and is not a stale card socket (another card process serves it, or it is not a socket)", opts.socket.display()),
            ));
        }
        std::fs::remove_file(&opts.socket)?;
    }
    install_signal_handlers();
    let mut state = CardState::new(opts.seed)?;
    if let Some(spec) = &opts.net {
        let p = port::open_port(spec)?;
        say(format!("port: {}", p.describe()));
        state.port = Some(p);
    }
    if let Some(path) = &opts.pcap {
        state.pcap = Some(PcapTap::create(path)?);
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        waiting: AtomicUsize::new(0),
        shutdown: AtomicBool::new(false),
        epoch: Instant::now(),
        last_request_ms: std::sync::atomic::AtomicU64::new(0),
    });
    let listener = UnixListener::bind(&opts.socket)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", opts.socket.display())))?;
    // Non-blocking for both users of the (shared) listening socket: the
    // busy watcher must never block in accept, and the server loop polls.
    listener.set_nonblocking(true)?;
    let listen_fd = listener.as_raw_fd();
    let watch_listener = listener.try_clone()?;
    let server = vfio_user::Server::from_owned_fd(OwnedFd::from(listener), true, backend::irqs(), backend::regions());
    let serving = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let clock = std::thread::Builder::new().name("card-clock".into()).spawn({
        let s = shared.clone();
        move || clock_thread(s)
    })?;
    let watch = std::thread::Builder::new().name("card-busy".into()).spawn({
        let (s, sv, r) = (shared.clone(), serving.clone(), refused.clone());
        move || busy_watch(watch_listener, sv, s, r)
    })?;
    std::thread::Builder::new().name("card-signals".into()).spawn({
        let (s, p) = (shared.clone(), opts.socket.clone());
        move || watch_signals(s, p)
    })?;
    say(format!("serving the card on {} (vfio-user)", opts.socket.display()));
    let mut served = 0;
    let result = loop {
        // The listener is non-blocking (the busy watcher shares it): wait
        // for a connection here, then let the server take it at once.
        if !port::poll_readable(listen_fd, Duration::from_millis(200)) {
            if shared.shutdown.load(Ordering::SeqCst) {
                break Ok(());
            }
            continue;
        }
        serving.store(true, Ordering::SeqCst);
        let mut backend = CardBackend::new(shared.clone());
        let t0 = Instant::now();
        // A panic inside the protocol crate on a malformed message ends this
        // client, not the card process.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.run(&mut backend)));
        serving.store(false, Ordering::SeqCst);
        let r = match r {
            // The watcher took the connection first (it thought us busy): no client.
            Ok(Err(vfio_user::Error::SocketAccept(e))) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the protocol handler panicked on this client's input".to_string()),
        };
        served += 1;
        {
            let mut st = shared.lock();
            if let Some(p) = &mut st.pcap {
                let _ = p.flush();
            }
            if let Err(e) = st.detach() {
                break Err(e);
            }
        }
        match r {
            Ok(()) => say(format!("client {served} detached after {:.1} s; card reset", t0.elapsed().as_secs_f64())),
            Err(e) => say(format!("client {served} ended with an error ({e}); card reset")),
        }
        if opts.max_clients != 0 && served >= opts.max_clients {
            break Ok(());
        }
    };
    shared.shutdown.store(true, Ordering::SeqCst);
    let _ = clock.join();
    let _ = watch.join();
    drop(server);
    let _ = std::fs::remove_file(&opts.socket);
    if let Some(p) = &mut shared.lock().pcap {
        p.flush()?;
    }
    say(format!("{} client(s) served, {} refused while busy", served, refused.load(Ordering::SeqCst)));
    result
}

/// Path helper for tests and the CLI: a fresh socket path in the temp dir.
pub fn temp_socket(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("offcard-{tag}-{}-{}.sock", std::process::id(), rand::random::<u32>()))
}

