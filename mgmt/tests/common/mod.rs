#![allow(dead_code)]

use offcard_mgmt::{
    AuditLog, AuthorizedKeys, Host, HostConfig, Identity, MemoryBackend, Op, PrivilegedBackend,
    TagScope,
};
use std::sync::Arc;

pub struct Fixture {
    pub host: Arc<Host>,
    pub backend: Arc<MemoryBackend>,
    /// Authorized for every op and every tag (`* tags=*`).
    pub caller: Identity,
    /// Authorized for read-counters only.
    pub reader: Identity,
    /// Not in the authorized-keys file.
    pub stranger: Identity,
}

pub fn fixture() -> Fixture {
    fixture_with(HostConfig::default())
}

pub fn fixture_with(config: HostConfig) -> Fixture {
    let host_id = Identity::generate();
    let caller = Identity::generate();
    let reader = Identity::generate();
    let stranger = Identity::generate();
    let text = format!(
        "# test authorized keys\n{}\n{}\n",
        // Tag-scoped ops need a tags= field (deny by default): the operator has every tag.
        AuthorizedKeys::format_line_scoped(
            &caller.ed25519.verifying_key().to_bytes(),
            &Op::ALL,
            &TagScope::All,
            "operator"
        ),
        AuthorizedKeys::format_line(
            &reader.ed25519.verifying_key().to_bytes(),
            &[Op::ReadCounters],
            "monitor"
        ),
    );
    let auth = AuthorizedKeys::parse(&text).unwrap();
    let backend = Arc::new(MemoryBackend::new());
    let dynb: Arc<dyn PrivilegedBackend> = backend.clone();
    let host = Arc::new(Host::new(host_id, auth, dynb, config, AuditLog::memory()));
    Fixture {
        host,
        backend,
        caller,
        reader,
        stranger,
    }
}

impl Fixture {
    pub fn host_vk(&self) -> ed25519_dalek::VerifyingKey {
        self.host.identity().ed25519.verifying_key()
    }
    pub fn host_x25519(&self) -> [u8; 32] {
        self.host.identity().x25519.public_bytes()
    }
}
