//! Results open only with the caller's key; any change to a response is detected.

mod common;
use common::*;
use offcard_mgmt::client::{open_response, prepare, ClientError, RequestOptions};
use offcard_mgmt::envelope::{verify_envelope, EnvelopeError, Status};
use offcard_mgmt::protocol::result_aad;
use offcard_mgmt::seal;
use offcard_mgmt::{Identity, OpOutput, Outcome, Params};

fn ok_response(f: &Fixture, params: &Params) -> (offcard_mgmt::PreparedRequest, Vec<u8>) {
    let req = prepare(&f.caller, params, &RequestOptions::default()).unwrap();
    let (resp, o) = f.host.process(&req.bytes);
    assert_eq!(o, Outcome::Ok);
    (req, resp)
}

#[test]
fn result_opens_only_with_callers_key() {
    let f = fixture();
    let (req, resp) = ok_response(
        &f,
        &Params::ReadHostMemory {
            addr: 0x1000_0040,
            len: 64,
        },
    );
    // The caller opens it and gets the right bytes.
    let out = open_response(&f.caller, &f.host_vk(), &req, &resp).unwrap();
    let expected: Vec<u8> = (0..64)
        .map(|i| f.backend.mem_byte(0x1000_0040 + i).unwrap())
        .collect();
    assert_eq!(out, OpOutput::Bytes(expected.clone()));

    let payload = verify_envelope(&f.host_vk(), &resp).unwrap();
    let Status::Ok { sealed } = payload.status else {
        panic!()
    };
    assert!(
        !sealed.windows(16).any(|w| w == &expected[..16]),
        "result visible in clear"
    );
    let aad = result_aad(&req.digest, &req.nonce);
    assert!(seal::open(&f.caller.x25519.secret, seal::RESULT_INFO, &aad, &sealed).is_ok());
    // Anybody else: the other identities, the host itself, fresh random keys.
    let mut others: Vec<Identity> = vec![
        f.reader.clone(),
        f.stranger.clone(),
        f.host.identity().clone(),
    ];
    others.extend((0..20).map(|_| Identity::generate()));
    for o in &others {
        assert!(seal::open(&o.x25519.secret, seal::RESULT_INFO, &aad, &sealed).is_err());
        // Same Ed25519 identity as the caller but another X25519 key: still cannot open.
        let mixed = Identity {
            ed25519: f.caller.ed25519.clone(),
            x25519: o.x25519.clone(),
        };
        match open_response(&mixed, &f.host_vk(), &req, &resp) {
            Err(ClientError::Open(_)) => {}
            r => panic!("opened with another key: {r:?}"),
        }
    }
    // Right key but wrong binding (other request's digest/nonce as AAD): fails.
    let req2 = prepare(&f.caller, &Params::ReadCounters, &RequestOptions::default()).unwrap();
    assert!(seal::open(
        &f.caller.x25519.secret,
        seal::RESULT_INFO,
        &result_aad(&req2.digest, &req.nonce),
        &sealed
    )
    .is_err());
    assert!(seal::open(
        &f.caller.x25519.secret,
        seal::RESULT_INFO,
        &result_aad(&req.digest, &req2.nonce),
        &sealed
    )
    .is_err());
    // The response is bound to its request: presenting it as the answer to another request fails.
    assert_eq!(
        open_response(&f.caller, &f.host_vk(), &req2, &resp).unwrap_err(),
        ClientError::Unbound("request_digest")
    );
}

#[test]
fn response_from_another_host_key_refused() {
    let f = fixture();
    let (req, resp) = ok_response(&f, &Params::ReadCounters);
    let impostor = Identity::generate();
    assert_eq!(
        open_response(&f.caller, &impostor.ed25519.verifying_key(), &req, &resp).unwrap_err(),
        ClientError::Envelope(EnvelopeError::WrongSigner)
    );
}

#[test]
fn every_byte_flip_of_a_response_is_detected() {
    let f = fixture();
    f.backend.set_counter("cache.hits", 12345);
    for params in [
        Params::ReadCounters,
        Params::ReadHostMemory {
            addr: 0x1000_0000,
            len: 32,
        },
    ] {
        let (req, resp) = ok_response(&f, &params);
        let good = open_response(&f.caller, &f.host_vk(), &req, &resp).unwrap();
        assert!(matches!(good, OpOutput::Counters(_) | OpOutput::Bytes(_)));
        for i in 0..resp.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut t = resp.clone();
                t[i] ^= mask;
                let r = open_response(&f.caller, &f.host_vk(), &req, &t);
                assert!(
                    r.is_err(),
                    "flip {mask:#x} at byte {i}/{} accepted: {r:?}",
                    resp.len()
                );
            }
        }
        // Truncation and extension too.
        for n in 0..resp.len() {
            assert!(
                open_response(&f.caller, &f.host_vk(), &req, &resp[..n]).is_err(),
                "truncated to {n}"
            );
        }
        let mut ext = resp.clone();
        ext.push(0);
        assert!(open_response(&f.caller, &f.host_vk(), &req, &ext).is_err());
    }
}

#[test]
fn every_byte_flip_of_a_rejection_is_detected() {
    let f = fixture();
    let req = prepare(
        &f.stranger,
        &Params::ReadCounters,
        &RequestOptions::default(),
    )
    .unwrap();
    let resp = f.host.handle(&req.bytes);
    assert_eq!(
        open_response(&f.stranger, &f.host_vk(), &req, &resp)
            .unwrap_err()
            .rejection_code(),
        Some("unauthorized")
    );
    for i in 0..resp.len() {
        let mut t = resp.clone();
        t[i] ^= 0x01;
        match open_response(&f.stranger, &f.host_vk(), &req, &t) {
            Err(ClientError::Rejected { .. }) | Ok(_) => {
                panic!("tampered rejection at byte {i} verified")
            }
            Err(_) => {}
        }
    }
}

#[test]
fn envelope_is_standard_cose_sign1() {
    // Standard-tool view: a tagged COSE_Sign1 (CBOR tag 18) with alg EdDSA and kid = host key,
    // whose signature verifies over the RFC 9052 Sig_structure with plain ed25519.
    use coset::{iana, TaggedCborSerializable};
    let f = fixture();
    let (_, resp) = ok_response(&f, &Params::ReadCounters);
    assert_eq!(resp[0], 0xd2, "CBOR tag 18");
    let cose = coset::CoseSign1::from_tagged_slice(&resp).unwrap();
    assert_eq!(
        cose.protected.header.alg,
        Some(coset::Algorithm::Assigned(iana::Algorithm::EdDSA))
    );
    assert_eq!(
        cose.protected.header.key_id,
        f.host_vk().to_bytes().to_vec()
    );
    let tbs = coset::sig_structure_data(
        coset::SignatureContext::CoseSign1,
        cose.protected.clone(),
        None,
        b"",
        cose.payload.as_ref().unwrap(),
    );
    let sig = ed25519_dalek::Signature::from_slice(&cose.signature).unwrap();
    f.host_vk().verify_strict(&tbs, &sig).unwrap();
    let payload: ciborium::value::Value =
        ciborium::de::from_reader(cose.payload.as_deref().unwrap()).unwrap();
    let keys: Vec<_> = payload
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_text().unwrap().to_string())
        .collect();
    for k in ["public_key", "nonce", "request_digest", "sealed_result"] {
        assert!(keys.contains(&k.to_string()), "{keys:?}");
    }
}
