//! The whole host pipeline on arbitrary bytes: never panics, never runs an
//! operation for input it did not see signed by an authorized key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use offcard_mgmt::{
    AuditLog, AuthorizedKeys, Host, HostConfig, Identity, MemoryBackend, Op, Outcome,
};
use std::sync::{Arc, OnceLock};

fn host() -> &'static (Host, Arc<MemoryBackend>) {
    static H: OnceLock<(Host, Arc<MemoryBackend>)> = OnceLock::new();
    H.get_or_init(|| {
        let mut auth = AuthorizedKeys::default();
        auth.allow(
            Identity::generate().ed25519.verifying_key().to_bytes(),
            &Op::ALL,
            "fuzz",
        );
        let b = Arc::new(MemoryBackend::new());
        let h = Host::new(
            Identity::generate(),
            auth,
            b.clone(),
            HostConfig::default(),
            AuditLog::Discard,
        );
        (h, b)
    })
}

fuzz_target!(|data: &[u8]| {
    let (h, b) = host();
    let (_, o) = h.process(data);
    assert!(matches!(o, Outcome::Rejected(_)));
    assert!(b.calls().is_empty());
});
