//! Requests built without this crate's request code: once by hand from
//! RFC 9052 with a generic CBOR library (ciborium) and ed25519-dalek, once
//! with coset's builder (a COSE implementation from crates.io). The host
//! must accept both and run them, so any COSE library can talk to it.

mod common;
use ciborium::value::Value;
use common::*;
use ed25519_dalek::Signer;
use offcard_mgmt::backend::Call;
use offcard_mgmt::client::{open_response, PreparedRequest};
use offcard_mgmt::protocol::{request_digest, Op, OpOutput};
use offcard_mgmt::Outcome;
use sha2::Digest;

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = vec![];
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The payload map as docs/mgmt.md specifies it.
fn payload(op: &str, nonce: &[u8], reply: [u8; 32], params: (&str, Value)) -> Vec<u8> {
    cbor(&Value::Map(vec![
        (t("module_id"), t("offcard-mgmt")),
        (t("version"), Value::Integer(2.into())),
        (t("op"), t(op)),
        (t("timestamp"), Value::Integer(now_ms().into())),
        (t("nonce"), Value::Bytes(nonce.to_vec())),
        (t("public_key"), Value::Bytes(reply.to_vec())),
        (t(params.0), params.1),
    ]))
}

fn check_runs(f: &Fixture, bytes: Vec<u8>, nonce: Vec<u8>, op: Op) -> OpOutput {
    let (resp, outcome) = f.host.process(&bytes);
    assert_eq!(outcome, Outcome::Ok);
    let req = PreparedRequest { op, digest: request_digest(&bytes), bytes, nonce, reply_key: f.caller.x25519.public_bytes() };
    open_response(&f.caller, &f.host_vk(), &req, &resp).unwrap()
}

#[test]
fn hand_built_rfc9052_request_runs() {
    let f = fixture();
    let caller = f.caller.ed25519.verifying_key().to_bytes();
    let nonce = [0x42u8; 16].to_vec();
    let params = Value::Map(vec![(t("tag"), Value::Integer(7.into())), (t("mask"), Value::Integer(0xf0.into()))]);
    let payload = payload("program-way-mask", &nonce, f.caller.x25519.public_bytes(), ("params", params));
    // Protected header {1: -8 (alg: EdDSA), 4: kid}, as a byte string.
    let protected =
        cbor(&Value::Map(vec![(Value::Integer(1.into()), Value::Integer((-8).into())), (Value::Integer(4.into()), Value::Bytes(caller.to_vec()))]));
    // RFC 9052 section 4.4: Sig_structure = ["Signature1", protected, external_aad, payload].
    let tbs = cbor(&Value::Array(vec![
        t("Signature1"),
        Value::Bytes(protected.clone()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.clone()),
    ]));
    let sig = f.caller.ed25519.sign(&tbs).to_bytes();
    let msg = Value::Tag(
        18,
        Box::new(Value::Array(vec![Value::Bytes(protected), Value::Map(vec![]), Value::Bytes(payload), Value::Bytes(sig.to_vec())])),
    );
    let bytes = cbor(&msg);
    // The digest the response binds is SHA-256 of exactly these bytes.
    assert_eq!(request_digest(&bytes).to_vec(), sha2::Sha256::digest(&bytes).to_vec());
    assert_eq!(check_runs(&f, bytes, nonce, Op::ProgramWayMask), OpOutput::Done);
    assert_eq!(f.backend.calls(), vec![Call::ProgramWayMask { tag: 7, mask: 0xf0 }]);
}

#[test]
fn coset_built_request_with_sealed_params_runs() {
    use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
    let f = fixture();
    let caller = f.caller.ed25519.verifying_key().to_bytes();
    let nonce = [0x17u8; 24].to_vec();
    // The params map, sealed to the host's X25519 key with HPKE (RFC 9180),
    // bound to the op, the caller and the nonce (docs/mgmt.md).
    let params = cbor(&Value::Map(vec![(t("tag"), Value::Integer(7.into())), (t("mask"), Value::Integer(0x0f.into()))]));
    let mut aad = b"program-way-mask\0".to_vec();
    aad.extend_from_slice(&caller);
    aad.extend_from_slice(&nonce);
    let sealed = offcard_mgmt::seal::seal(&f.host_x25519(), offcard_mgmt::seal::PARAMS_INFO, &aad, &params).unwrap();
    let payload = payload("program-way-mask", &nonce, f.caller.x25519.public_bytes(), ("sealed_params", Value::Bytes(sealed)));
    let sign1 = CoseSign1Builder::new()
        .protected(HeaderBuilder::new().algorithm(iana::Algorithm::EdDSA).key_id(caller.to_vec()).build())
        .payload(payload)
        .create_signature(b"", |tbs| f.caller.ed25519.sign(tbs).to_bytes().to_vec())
        .build();
    let bytes = sign1.clone().to_tagged_vec().unwrap();
    assert_eq!(check_runs(&f, bytes, nonce, Op::ProgramWayMask), OpOutput::Done);
    assert_eq!(f.backend.way_mask(7), Some(0x0f));
    // Untagged COSE_Sign1 is refused: the tag says what the bytes are.
    let untagged = sign1.to_vec().unwrap();
    assert!(matches!(f.host.process(&untagged).1, Outcome::Rejected(_)));
}
