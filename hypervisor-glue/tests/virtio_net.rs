//! virtio-net device model + in-process pair backend, driven the way a guest driver
//! drives it (registers over the MMIO window, split virtqueues in guest RAM). Runs
//! without KVM: the "guests" are two memfd-backed guest memories.

use offcard_vmm::devices::virtio::mmio::MmioTransport;
use offcard_vmm::devices::virtio::net::{pair, Net, PairBackend, NET_HDR_LEN};
use offcard_vmm::GuestMem;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

const NUM: u16 = 64;

struct Driver {
    mem: GuestMemoryMmap,
    dev: MmioTransport<Net>,
    avail_idx: [u16; 2],
    used_seen: [u16; 2],
    irq: EventFd,
}

fn qbase(q: usize) -> u64 {
    0x10000 + q as u64 * 0x10000
}
fn buf(q: usize, i: u16) -> u64 {
    0x100000 + q as u64 * 0x100000 + u64::from(i) * 0x1000
}

impl Driver {
    fn w(&mut self, off: u64, v: u32) {
        self.dev.mmio_write(off, &v.to_le_bytes());
    }
    fn r(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dev.mmio_read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn new(gm: &GuestMem, dev_backend: PairBackend, mac: [u8; 6]) -> Driver {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let dev = MmioTransport::new(Net::new(gm.guest_memory().clone(), Box::new(dev_backend), mac), irq.try_clone().unwrap());
        let mut d = Driver { mem: gm.guest_memory().clone(), dev, avail_idx: [0; 2], used_seen: [0; 2], irq };
        assert_eq!(d.r(0x000), 0x7472_6976);
        assert_eq!(d.r(0x004), 2);
        assert_eq!(d.r(0x008), 1);
        d.w(0x070, 1);
        d.w(0x070, 3);
        d.w(0x014, 1);
        assert_ne!(d.r(0x010) & 1, 0, "VERSION_1 offered");
        d.w(0x024, 0);
        d.w(0x020, 1 << 5);
        d.w(0x024, 1);
        d.w(0x020, 1);
        d.w(0x070, 11);
        for q in 0..2u32 {
            d.w(0x030, q);
            assert!(d.r(0x034) >= u32::from(NUM));
            d.w(0x038, u32::from(NUM));
            let b = qbase(q as usize);
            d.w(0x080, b as u32);
            d.w(0x084, 0);
            d.w(0x090, (b + 0x1000) as u32);
            d.w(0x094, 0);
            d.w(0x0a0, (b + 0x2000) as u32);
            d.w(0x0a4, 0);
            d.w(0x044, 1);
        }
        d.w(0x070, 15);
        let mut m = [0u8; 6];
        d.dev.mmio_read(0x100, &mut m);
        assert_eq!(m, mac);
        for i in 0..NUM {
            d.post(0, i, 2048, 2);
        }
        d
    }

    fn post(&mut self, q: usize, i: u16, len: u32, flags: u16) {
        let dsc = GuestAddress(qbase(q) + u64::from(i) * 16);
        self.mem.write_obj(buf(q, i), dsc).unwrap();
        self.mem.write_obj(len, GuestAddress(dsc.0 + 8)).unwrap();
        self.mem.write_obj(flags, GuestAddress(dsc.0 + 12)).unwrap();
        self.mem.write_obj(0u16, GuestAddress(dsc.0 + 14)).unwrap();
        let a = qbase(q) + 0x1000;
        self.mem.write_obj(i, GuestAddress(a + 4 + u64::from(self.avail_idx[q] % NUM) * 2)).unwrap();
        self.avail_idx[q] = self.avail_idx[q].wrapping_add(1);
        self.mem.write_obj(self.avail_idx[q], GuestAddress(a + 2)).unwrap();
    }

    fn send(&mut self, frame: &[u8]) {
        let i = self.avail_idx[1] % NUM;
        let mut data = vec![0u8; NET_HDR_LEN];
        data.extend_from_slice(frame);
        self.mem.write_slice(&data, GuestAddress(buf(1, i))).unwrap();
        self.post(1, i, data.len() as u32, 0);
        self.w(0x050, 1);
    }

    /// Frames delivered into receive buffers since the last call (buffers re-posted).
    fn recv(&mut self) -> Vec<Vec<u8>> {
        self.dev.poll();
        let u = qbase(0) + 0x2000;
        let idx: u16 = self.mem.read_obj(GuestAddress(u + 2)).unwrap();
        let mut out = Vec::new();
        while self.used_seen[0] != idx {
            let e = u + 4 + u64::from(self.used_seen[0] % NUM) * 8;
            let id: u32 = self.mem.read_obj(GuestAddress(e)).unwrap();
            let len: u32 = self.mem.read_obj(GuestAddress(e + 4)).unwrap();
            let mut b = vec![0u8; len as usize];
            self.mem.read_slice(&mut b, GuestAddress(buf(0, id as u16))).unwrap();
            out.push(b[NET_HDR_LEN..].to_vec());
            self.used_seen[0] = self.used_seen[0].wrapping_add(1);
            self.post(0, id as u16, 2048, 2);
        }
        out
    }
}

fn frame(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn frames_cross_between_two_guests_intact() {
    let (ga, gb) = (GuestMem::new_memfd(16 << 20).unwrap(), GuestMem::new_memfd(16 << 20).unwrap());
    let (ea, eb) = pair();
    let mut a = Driver::new(&ga, ea, [2, 0, 0, 0, 0, 1]);
    let mut b = Driver::new(&gb, eb, [2, 0, 0, 0, 0, 2]);
    let mut sent_ab = Vec::new();
    let mut sent_ba = Vec::new();
    let mut got_ab = Vec::new();
    let mut got_ba = Vec::new();
    for k in 0..300u32 {
        let f = frame(60 + (k as usize * 37) % 1455, k);
        a.send(&f);
        sent_ab.push(f);
        let g = frame(42 + (k as usize * 91) % 1473, k + 1000);
        b.send(&g);
        sent_ba.push(g);
        if k % 7 == 0 {
            got_ab.extend(b.recv());
            got_ba.extend(a.recv());
        }
    }
    for _ in 0..10 {
        got_ab.extend(b.recv());
        got_ba.extend(a.recv());
    }
    assert_eq!(got_ab.len(), sent_ab.len());
    assert_eq!(got_ab, sent_ab, "A->B frames differ");
    assert_eq!(got_ba, sent_ba, "B->A frames differ");
    assert_eq!(a.dev.device().stats.tx_frames, 300);
    assert_eq!(b.dev.device().stats.rx_frames, 300);
    assert_eq!(a.dev.device().stats.errors + b.dev.device().stats.errors, 0);
    assert!(a.irq.read().unwrap() > 0, "interrupts raised");
}

#[test]
fn malformed_rings_reset_the_device_without_panicking() {
    let ga = GuestMem::new_memfd(16 << 20).unwrap();
    let (ea, _eb) = pair();
    let mut a = Driver::new(&ga, ea, [2, 0, 0, 0, 0, 1]);
    // A descriptor that chains to itself.
    let dsc = GuestAddress(qbase(1) + 5 * 16);
    a.mem.write_obj(buf(1, 5), dsc).unwrap();
    a.mem.write_obj(64u32, GuestAddress(dsc.0 + 8)).unwrap();
    a.mem.write_obj(1u16, GuestAddress(dsc.0 + 12)).unwrap();
    a.mem.write_obj(5u16, GuestAddress(dsc.0 + 14)).unwrap();
    let av = qbase(1) + 0x1000;
    a.mem.write_obj(5u16, GuestAddress(av + 4)).unwrap();
    a.mem.write_obj(1u16, GuestAddress(av + 2)).unwrap();
    a.w(0x050, 1);
    assert_ne!(a.r(0x070) & 0x40, 0, "DEVICE_NEEDS_RESET set");
    assert_eq!(a.dev.device().stats.errors, 1);
    // Buffers pointing outside guest RAM.
    a.w(0x070, 0);
    let mut b = Driver::new(&ga, pair().0, [2, 0, 0, 0, 0, 3]);
    let dsc = GuestAddress(qbase(1));
    b.mem.write_obj(0xffff_0000_0000u64, dsc).unwrap();
    b.mem.write_obj(64u32, GuestAddress(dsc.0 + 8)).unwrap();
    b.mem.write_obj(0u16, GuestAddress(dsc.0 + 12)).unwrap();
    b.mem.write_obj(0u16, GuestAddress(av + 4)).unwrap();
    b.mem.write_obj(1u16, GuestAddress(av + 2)).unwrap();
    b.w(0x050, 1);
    assert_ne!(b.r(0x070) & 0x40, 0);
}

/// The device counts the buffer bytes (header and frame) it copies out of and into
/// guest memory: the figure the card-backed device must bring to zero.
#[test]
fn device_counts_the_buffer_bytes_it_copies() {
    let (ga, gb) = (GuestMem::new_memfd(16 << 20).unwrap(), GuestMem::new_memfd(16 << 20).unwrap());
    let (ea, eb) = pair();
    let mut a = Driver::new(&ga, ea, [2, 0, 0, 0, 0, 1]);
    let mut b = Driver::new(&gb, eb, [2, 0, 0, 0, 0, 2]);
    let sizes = [60usize, 1514, 42];
    for (k, &n) in sizes.iter().enumerate() {
        a.send(&frame(n, k as u32));
    }
    assert_eq!(b.recv().len(), sizes.len());
    let bytes: u64 = sizes.iter().map(|&n| (NET_HDR_LEN + n) as u64).sum();
    assert_eq!(a.dev.device().stats.tx_buffer_bytes_read, bytes);
    assert_eq!(b.dev.device().stats.rx_buffer_bytes_written, bytes);
    assert_eq!(a.dev.device().stats.rx_buffer_bytes_written + b.dev.device().stats.tx_buffer_bytes_read, 0);
}

/// An available index more than the queue size ahead of the device's is a broken
/// ring: the device needs a reset, and a reset clears the status.
#[test]
fn available_index_jumping_past_the_queue_size_resets_the_device() {
    let ga = GuestMem::new_memfd(16 << 20).unwrap();
    let (ea, _eb) = pair();
    let mut a = Driver::new(&ga, ea, [2, 0, 0, 0, 0, 1]);
    a.mem.write_obj(NUM + 1, GuestAddress(qbase(1) + 0x1000 + 2)).unwrap();
    a.w(0x050, 1);
    assert_ne!(a.r(0x070) & 0x40, 0, "DEVICE_NEEDS_RESET set");
    assert_eq!(a.dev.device().stats.errors, 1);
    assert_eq!(a.dev.device().stats.tx_frames, 0);
    a.w(0x070, 0);
    assert_eq!(a.r(0x070), 0);
}

/// Guest <-> host through a TAP device in a fresh network namespace (this test's
/// thread only): a frame the guest transmits arrives on the host interface (seen by an
/// AF_PACKET socket), and a frame the host sends there lands in the guest's buffers.
#[test]
fn tap_backend_in_a_network_namespace() {
    use offcard_vmm::devices::virtio::net::TapBackend;
    let t = std::thread::spawn(|| -> Result<(), String> {
        // SAFETY: unshare affects only this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
        }
        let tap = TapBackend::open("offc0").map_err(|e| format!("tap: {e}"))?;
        // Host side: a packet socket bound to the interface.
        let ifindex = unsafe { libc::if_nametoindex(c"offc0".as_ptr()) };
        let s = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK, (libc::ETH_P_ALL as u16).to_be() as i32) };
        assert!(s >= 0 && ifindex > 0);
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        let rc = unsafe { libc::bind(s, &sll as *const _ as *const libc::sockaddr, std::mem::size_of_val(&sll) as u32) };
        assert_eq!(rc, 0);

        let gm = GuestMem::new_memfd(16 << 20).unwrap();
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let dev = MmioTransport::new(Net::new(gm.guest_memory().clone(), Box::new(tap), [2, 0, 0, 0, 0, 5]), irq.try_clone().unwrap());
        let mut d = Driver { mem: gm.guest_memory().clone(), dev, avail_idx: [0; 2], used_seen: [0; 2], irq };
        // Reuse the setup sequence of Driver::new by hand (it needs a PairBackend).
        for (off, v) in [(0x70u64, 1u32), (0x70, 3), (0x24, 1), (0x20, 1), (0x70, 11)] {
            d.w(off, v);
        }
        for q in 0..2u32 {
            let b = qbase(q as usize);
            for (off, v) in [(0x30u64, q), (0x38, u32::from(NUM)), (0x80, b as u32), (0x90, (b + 0x1000) as u32), (0xa0, (b + 0x2000) as u32), (0x44, 1)] {
                d.w(off, v);
            }
        }
        d.w(0x70, 15);
        for i in 0..NUM {
            d.post(0, i, 2048, 2);
        }
        // Guest -> host: an Ethernet frame with a private ethertype.
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 5, 0x88, 0xb5]);
        f.extend((0..100u8).map(|i| i ^ 0x3c));
        d.send(&f);
        let mut got = None;
        for _ in 0..200 {
            let mut b = vec![0u8; 2048];
            let n = unsafe { libc::recv(s, b.as_mut_ptr() as *mut libc::c_void, b.len(), 0) };
            if n > 0 {
                b.truncate(n as usize);
                if b.len() >= 14 && b[12..14] == [0x88, 0xb5] {
                    got = Some(b);
                    break;
                }
            } else {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        assert_eq!(got.as_deref(), Some(&f[..]), "guest frame not seen on the host interface");
        // Host -> guest.
        let mut h = vec![2u8, 0, 0, 0, 0, 5, 2, 0, 0, 0, 0, 0x99, 0x88, 0xb5];
        h.extend((0..64u8).map(|i| i.wrapping_mul(3)));
        let n = unsafe { libc::sendto(s, h.as_ptr() as *const libc::c_void, h.len(), 0, &sll as *const _ as *const libc::sockaddr, std::mem::size_of_val(&sll) as u32) };
        assert_eq!(n as usize, h.len());
        let mut rx = Vec::new();
        for _ in 0..200 {
            rx.extend(d.recv());
            if rx.iter().any(|x| x == &h) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(rx.iter().any(|x| x == &h), "host frame not delivered to the guest: {rx:?}");
        unsafe { libc::close(s) };
        Ok(())
    });
    match t.join().unwrap() {
        Ok(()) => {}
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "\nSKIPPED tap_backend_in_a_network_namespace: {e} (needs root / CAP_NET_ADMIN)\n");
        }
    }
}
