//! What the driver's carriers do without a card: a clear error that names
//! what is missing (these tests need neither the simulator nor a card).
use offcard_driver::*;

#[test]
fn vfio_backend_fails_clearly_without_vfio() {
    if std::path::Path::new("/dev/vfio/vfio").exists() {
        eprintln!("SKIPPED: this host has /dev/vfio; the failure path is not reachable");
        return;
    }
    let err = VfioTransport::open("0000:01:00.0").err().expect("must fail without VFIO").to_string();
    assert!(err.contains("/dev/vfio/vfio"), "{err}");
    assert!(err.contains("vfio-pci"), "{err}");
}

#[test]
fn vfio_user_without_a_socket_names_the_command() {
    let err = VfioUserTransport::connect(std::path::Path::new("/nonexistent/card.sock")).err().expect("must fail").to_string();
    assert!(err.contains("offcard card --socket"), "{err}");
}

#[test]
fn dma_buffer_accesses_are_bounded() {
    let mem = std::sync::Arc::new(std::sync::Mutex::new(vec![0u8; 64]));
    let ptr = mem.lock().unwrap().as_mut_ptr();
    // SAFETY: the Vec's 64 bytes stay allocated while the guard (the Arc) lives.
    let mut b = unsafe { DmaBuffer::new(0x1000, ptr, 64, mem.clone()) };
    b.write(60, &[1, 2, 3, 4]);
    assert_eq!(b.read_vec(60, 4), vec![1, 2, 3, 4]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.write(61, &[0; 4])));
    assert!(r.is_err(), "a write past the end must not happen");
}
