//! Response envelope (COSE_Sign1) and payload decoders: no panic; nothing but
//! a genuine host signature verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use offcard_mgmt::envelope::{verify_envelope, ResponsePayload};

fuzz_target!(|data: &[u8]| {
    let host = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
    let _ = verify_envelope(&host, data);
    if let Ok(p) = ResponsePayload::decode(data) {
        assert_eq!(p.encode(), data);
    }
});
