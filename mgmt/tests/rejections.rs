//! Every bad request is refused with a clear error and the operation never
//! runs: the MemoryBackend call log stays empty and its state unchanged.

mod common;
use common::*;
use ed25519_dalek::{Signer, SigningKey};
use offcard_mgmt::client::{open_response, prepare, ClientError, PreparedRequest, RequestOptions};
use offcard_mgmt::host::now_ms;
use offcard_mgmt::protocol::{request_digest, Request, MAX_REQUEST_BYTES};
use offcard_mgmt::{Call, OpOutput, Outcome, Params, Reject};

const WAY: Params = Params::ProgramWayMask { tag: 7, mask: 0xf0 };

/// Sends raw bytes; returns the host outcome and the client-side error.
fn send(
    f: &Fixture,
    caller: &offcard_mgmt::Identity,
    req: &PreparedRequest,
) -> (Outcome, Result<OpOutput, ClientError>) {
    let (resp, outcome) = f.host.process(&req.bytes);
    (outcome, open_response(caller, &f.host_vk(), req, &resp))
}

fn assert_rejected(
    f: &Fixture,
    outcome: &Outcome,
    client: &Result<OpOutput, ClientError>,
    code: &str,
    msg_part: &str,
) {
    match outcome {
        Outcome::Rejected(r) => {
            assert_eq!(r.code(), code, "host reason: {r}");
            assert!(
                r.to_string().contains(msg_part),
                "{r} should mention {msg_part:?}"
            );
        }
        o => panic!("expected rejection {code}, got {o:?}"),
    }
    match client {
        Err(e @ ClientError::Rejected { .. }) => {
            assert_eq!(e.rejection_code(), Some(code));
            assert!(e.to_string().contains(msg_part), "client error {e}");
        }
        other => panic!("client should see rejection {code}, got {other:?}"),
    }
    assert_eq!(f.backend.calls(), vec![], "operation ran despite rejection");
    assert_eq!(f.backend.way_mask(7), None);
    let audit = f.host.audit().lines();
    assert!(
        audit
            .last()
            .unwrap()
            .contains(&format!("outcome=rejected:{code}")),
        "audit: {audit:?}"
    );
    assert!(
        !audit.iter().any(|l| l.contains("outcome=accepted")),
        "audit: {audit:?}"
    );
}

/// Re-encodes a request with a modified field and the original (now wrong) signature.
fn reencode(req: &PreparedRequest, edit: impl FnOnce(&mut Request)) -> PreparedRequest {
    let mut r = Request::decode(&req.bytes).unwrap();
    edit(&mut r);
    let bytes = r.encode();
    PreparedRequest {
        digest: request_digest(&bytes),
        bytes,
        ..req.clone()
    }
}

#[test]
fn control_valid_request_runs() {
    let f = fixture();
    let req = prepare(&f.caller, &WAY, &RequestOptions::default()).unwrap();
    let (o, c) = send(&f, &f.caller, &req);
    assert_eq!(o, Outcome::Ok);
    assert_eq!(c.unwrap(), OpOutput::Done);
    assert_eq!(
        f.backend.calls(),
        vec![Call::ProgramWayMask { tag: 7, mask: 0xf0 }]
    );
    assert_eq!(f.backend.way_mask(7), Some(0xf0));
    let audit = f.host.audit().lines();
    assert!(
        audit[0].contains("outcome=accepted") && audit[1].contains("outcome=ok"),
        "{audit:?}"
    );
    assert!(
        audit[1].contains(&hex::encode(req.digest)) && audit[1].contains("op=program-way-mask")
    );
}

#[test]
fn unsigned_request_rejected() {
    let f = fixture();
    let req = prepare(&f.caller, &WAY, &RequestOptions::default()).unwrap();
    // All-zero signature.
    let zero = reencode(&req, |r| r.signature = [0; 64]);
    let (o, c) = send(&f, &f.caller, &zero);
    assert_rejected(&f, &o, &c, "bad-signature", "signature verification failed");
    // Signature field missing altogether.
    let mut stripped = req.clone();
    stripped.bytes.truncate(stripped.bytes.len() - 64);
    stripped.digest = request_digest(&stripped.bytes);
    let (o, c) = send(&f, &f.caller, &stripped);
    assert_rejected(&f, &o, &c, "malformed", "COSE_Sign1");
}

#[test]
fn wrongly_signed_requests_rejected() {
    let f = fixture();
    // Signed by the stranger but claiming to be the authorized caller.
    let req = prepare(&f.caller, &WAY, &RequestOptions::default()).unwrap();
    let forged = reencode(&req, |r| {
        let body = r.to_be_signed();
        r.signature = f.stranger.ed25519.sign(&body).to_bytes();
    });
    let (o, c) = send(&f, &f.caller, &forged);
    assert_rejected(&f, &o, &c, "bad-signature", "signature");
    // Valid signature, then one field altered (mask widened).
    let altered = reencode(&req, |r| {
        r.params = Params::ProgramWayMask { tag: 7, mask: 0xff }.encode()
    });
    let (o, c) = send(&f, &f.caller, &altered);
    assert_rejected(&f, &o, &c, "bad-signature", "signature");
    // Signature without the domain-separation context.
    let nocontext = reencode(&req, |r| {
        r.signature = f.caller.ed25519.sign(&r.encode_body()).to_bytes()
    });
    let (o, c) = send(&f, &f.caller, &nocontext);
    assert_rejected(&f, &o, &c, "bad-signature", "signature");
    // Small-order (weak) caller key with a signature that non-strict verification may accept.
    let weak = reencode(&req, |r| {
        let mut id = [0u8; 32];
        id[0] = 1; // the identity point
        r.caller = id;
        let mut sig = [0u8; 64];
        sig[0] = 1; // R = identity, s = 0
        r.signature = sig;
    });
    let (o, c) = send(&f, &f.caller, &weak);
    assert_rejected(&f, &o, &c, "bad-signature", "signature");
}

#[test]
fn expired_and_future_requests_rejected() {
    let f = fixture();
    let old = RequestOptions {
        timestamp_ms: Some(now_ms() - 31_000),
        ..Default::default()
    };
    let req = prepare(&f.caller, &WAY, &old).unwrap();
    let (o, c) = send(&f, &f.caller, &req);
    assert_rejected(&f, &o, &c, "stale", "outside the freshness window");
    let future = RequestOptions {
        timestamp_ms: Some(now_ms() + 31_000),
        ..Default::default()
    };
    let req = prepare(&f.caller, &WAY, &future).unwrap();
    let (o, c) = send(&f, &f.caller, &req);
    assert_rejected(&f, &o, &c, "stale", "outside the freshness window");
    // Just inside the window is fine (control).
    let ok = RequestOptions {
        timestamp_ms: Some(now_ms() - 20_000),
        ..Default::default()
    };
    let req = prepare(&f.caller, &Params::ReadCounters, &ok).unwrap();
    assert_eq!(f.host.process(&req.bytes).1, Outcome::Ok);
}

#[test]
fn replayed_request_rejected() {
    let f = fixture();
    let req = prepare(&f.caller, &Params::ReadCounters, &RequestOptions::default()).unwrap();
    let (o, c) = send(&f, &f.caller, &req);
    assert_eq!(o, Outcome::Ok);
    assert!(matches!(c.unwrap(), OpOutput::Counters(_)));
    assert_eq!(f.backend.calls().len(), 1);
    // Same bytes again: refused, and no second call.
    let (o, c) = send(&f, &f.caller, &req);
    assert!(matches!(o, Outcome::Rejected(Reject::Replay)), "{o:?}");
    assert_eq!(c.unwrap_err().rejection_code(), Some("replay"));
    // A different request re-using the nonce: refused too.
    let again = prepare(
        &f.caller,
        &WAY,
        &RequestOptions {
            nonce: Some(req.nonce.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let (o, c) = send(&f, &f.caller, &again);
    assert!(matches!(o, Outcome::Rejected(Reject::Replay)), "{o:?}");
    assert!(c.unwrap_err().to_string().contains("nonce already used"));
    assert_eq!(f.backend.calls(), vec![Call::ReadCounters]);
    assert_eq!(f.backend.way_mask(7), None);
}

#[test]
fn replay_cache_full_fails_closed() {
    let f = fixture_with(offcard_mgmt::HostConfig {
        nonce_capacity: 2,
        ..Default::default()
    });
    for _ in 0..2 {
        let r = prepare(&f.caller, &Params::ReadCounters, &RequestOptions::default()).unwrap();
        assert_eq!(f.host.process(&r.bytes).1, Outcome::Ok);
    }
    let r = prepare(&f.caller, &WAY, &RequestOptions::default()).unwrap();
    assert!(matches!(
        f.host.process(&r.bytes).1,
        Outcome::Rejected(Reject::ReplayCacheFull)
    ));
    assert_eq!(f.backend.way_mask(7), None);
}

#[test]
fn unauthorized_requests_rejected() {
    let f = fixture();
    // Unknown key, validly signed.
    let req = prepare(&f.stranger, &WAY, &RequestOptions::default()).unwrap();
    let (o, c) = send(&f, &f.stranger, &req);
    assert_rejected(
        &f,
        &o,
        &c,
        "unauthorized",
        "not authorized for program-way-mask",
    );
    // Known key, operation not granted to it.
    let req = prepare(&f.reader, &WAY, &RequestOptions::default()).unwrap();
    let (o, c) = send(&f, &f.reader, &req);
    assert_rejected(
        &f,
        &o,
        &c,
        "unauthorized",
        "not authorized for program-way-mask",
    );
    let req = prepare(
        &f.reader,
        &Params::ReadHostMemory {
            addr: 0x1000_0000,
            len: 16,
        },
        &RequestOptions::default(),
    )
    .unwrap();
    let (o, c) = send(&f, &f.reader, &req);
    assert!(matches!(o, Outcome::Rejected(Reject::Unauthorized { .. })));
    assert!(c.is_err());
    assert_eq!(f.backend.calls(), vec![]);
    // Control: the reader may read counters.
    let req = prepare(&f.reader, &Params::ReadCounters, &RequestOptions::default()).unwrap();
    assert!(matches!(
        send(&f, &f.reader, &req).1.unwrap(),
        OpOutput::Counters(_)
    ));
}

#[test]
fn oversized_request_rejected_before_decoding() {
    let f = fixture();
    let req = prepare(&f.caller, &WAY, &RequestOptions::default()).unwrap();
    let mut big = req.clone();
    big.bytes.resize(MAX_REQUEST_BYTES + 1, 0);
    big.digest = request_digest(&big.bytes);
    let (o, c) = send(&f, &f.caller, &big);
    assert_rejected(&f, &o, &c, "oversized", "exceeds the limit");
    // A well-formed, validly signed request whose params exceed the limit.
    let huge = Params::ProgramPathTable {
        tenant: 1,
        entries: vec![50000; 4096],
    };
    let mut r = Request::decode(&req.bytes).unwrap();
    r.op = offcard_mgmt::Op::ProgramPathTable;
    r.params_mode = offcard_mgmt::protocol::ParamsMode::Sealed;
    r.params = huge.encode().repeat(9);
    r.sign(&f.caller.ed25519);
    let bytes = r.encode();
    assert!(bytes.len() > MAX_REQUEST_BYTES);
    let (resp, o) = f.host.process(&bytes);
    assert!(
        matches!(o, Outcome::Rejected(Reject::Oversized { .. })),
        "{o:?}"
    );
    assert!(!resp.is_empty());
    assert_eq!(f.backend.calls(), vec![]);
}

#[test]
fn sealed_params_to_wrong_key_rejected() {
    let f = fixture();
    let other = offcard_mgmt::Identity::generate();
    let opts = RequestOptions {
        seal_params_to: Some(other.x25519.public_bytes()),
        ..Default::default()
    };
    let req = prepare(&f.caller, &WAY, &opts).unwrap();
    let (o, c) = send(&f, &f.caller, &req);
    assert_rejected(&f, &o, &c, "bad-params", "sealed params");
    // Control: sealed to the host works.
    let opts = RequestOptions {
        seal_params_to: Some(f.host_x25519()),
        ..Default::default()
    };
    let req = prepare(&f.caller, &WAY, &opts).unwrap();
    assert!(
        !req.bytes.windows(8).any(|w| w == 0xf0u64.to_be_bytes()),
        "params visible in clear"
    );
    assert_eq!(send(&f, &f.caller, &req).1.unwrap(), OpOutput::Done);
    assert_eq!(f.backend.way_mask(7), Some(0xf0));
}

#[test]
fn small_order_reply_key_rejected_before_running() {
    let f = fixture();
    let req = prepare(&f.caller, &WAY, &RequestOptions::default()).unwrap();
    let bad = reencode(&req, |r| {
        r.reply_key = [0u8; 32];
        r.sign(&f.caller.ed25519);
    });
    let (_, o) = f.host.process(&bad.bytes);
    assert!(matches!(o, Outcome::Rejected(Reject::ReplyKey)), "{o:?}");
    assert_eq!(f.backend.calls(), vec![]);
}

#[test]
fn signing_key_must_match_claimed_caller_even_if_authorized() {
    // The reader signs a request that names the operator as caller.
    let f = fixture();
    let req = prepare(&f.caller, &WAY, &RequestOptions::default()).unwrap();
    let forged = reencode(&req, |r| {
        let sk: &SigningKey = &f.reader.ed25519;
        r.signature = sk
            .sign(&r.to_be_signed())
            .to_bytes();
    });
    let (o, _) = send(&f, &f.caller, &forged);
    assert!(matches!(o, Outcome::Rejected(Reject::BadSignature)));
    assert_eq!(f.backend.calls(), vec![]);
}
