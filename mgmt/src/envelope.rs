//! The response envelope: a tagged COSE_Sign1 (RFC 9052, tag 18) signed with
//! the host's Ed25519 identity key (alg EdDSA, kid = host public key), whose
//! payload is a CBOR map in the style of a Nitro Enclaves attestation
//! document: it binds the caller's reply `public_key`, the request `nonce`
//! and `request_digest`, and carries the HPKE-sealed result.
//!
//! Decoding is fail-closed: the envelope must re-encode to exactly the bytes
//! received, the protected header must be exactly `{alg: EdDSA, kid: host}`,
//! the unprotected header must be empty, the signature must pass
//! `verify_strict`, and the payload must contain exactly the expected keys in
//! the expected order with the expected types.

use crate::protocol::DecodeError;
use ciborium::value::Value;
use coset::{
    iana, CoseSign1, CoseSign1Builder, Header, HeaderBuilder, ProtectedHeader,
    TaggedCborSerializable,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Identifies this payload format.
pub const MODULE_ID: &str = "offcard-mgmt";
pub const PAYLOAD_VERSION: u64 = 1;
/// Largest response a client will parse.
pub const MAX_RESPONSE_BYTES: usize = crate::protocol::MAX_MESSAGE;

/// Outcome carried by the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Request accepted and run; `sealed` holds the HPKE-sealed [`crate::protocol::OpOutput`].
    Ok { sealed: Vec<u8> },
    /// Request refused before anything ran. `code` is machine-readable.
    Rejected { code: String, message: String },
}

/// The signed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePayload {
    pub timestamp_ms: u64,
    /// SHA-256 of the request, empty if the host never read it (oversized frame).
    pub request_digest: Vec<u8>,
    /// The request nonce (empty if the request could not be decoded).
    pub nonce: Vec<u8>,
    /// The caller's X25519 reply key the result is sealed to (empty if unknown).
    pub public_key: Vec<u8>,
    pub status: Status,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

impl ResponsePayload {
    fn to_value(&self) -> Value {
        let (status, code, message, sealed) = match &self.status {
            Status::Ok { sealed } => ("ok", "", "", sealed.clone()),
            Status::Rejected { code, message } => {
                ("rejected", code.as_str(), message.as_str(), Vec::new())
            }
        };
        Value::Map(vec![
            (text("module_id"), text(MODULE_ID)),
            (text("version"), Value::Integer(PAYLOAD_VERSION.into())),
            (text("timestamp"), Value::Integer(self.timestamp_ms.into())),
            (
                text("request_digest"),
                Value::Bytes(self.request_digest.clone()),
            ),
            (text("nonce"), Value::Bytes(self.nonce.clone())),
            (text("public_key"), Value::Bytes(self.public_key.clone())),
            (text("status"), text(status)),
            (text("reason"), text(code)),
            (text("error"), text(message)),
            (text("sealed_result"), Value::Bytes(sealed)),
        ])
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(&self.to_value(), &mut out).expect("CBOR to Vec cannot fail");
        out
    }

    /// Strict decoder: exact keys, order and types; canonical re-encoding.
    pub fn decode(b: &[u8]) -> Result<ResponsePayload, DecodeError> {
        let bad = |m: &str| DecodeError(format!("response payload: {m}"));
        let v: Value = ciborium::de::from_reader(b).map_err(|_| bad("not CBOR"))?;
        let Value::Map(entries) = v else {
            return Err(bad("not a map"));
        };
        const KEYS: [&str; 10] = [
            "module_id",
            "version",
            "timestamp",
            "request_digest",
            "nonce",
            "public_key",
            "status",
            "reason",
            "error",
            "sealed_result",
        ];
        if entries.len() != KEYS.len() {
            return Err(bad("wrong number of fields"));
        }
        for (i, (k, _)) in entries.iter().enumerate() {
            if k.as_text() != Some(KEYS[i]) {
                return Err(bad("unexpected field"));
            }
        }
        let get_text = |i: usize| {
            entries[i]
                .1
                .as_text()
                .map(str::to_string)
                .ok_or_else(|| bad("expected text"))
        };
        let get_bytes = |i: usize| {
            entries[i]
                .1
                .as_bytes()
                .cloned()
                .ok_or_else(|| bad("expected bytes"))
        };
        let get_u64 = |i: usize| {
            entries[i]
                .1
                .as_integer()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| bad("expected uint"))
        };
        if get_text(0)? != MODULE_ID {
            return Err(bad("wrong module_id"));
        }
        if get_u64(1)? != PAYLOAD_VERSION {
            return Err(bad("unsupported version"));
        }
        let timestamp_ms = get_u64(2)?;
        let request_digest = get_bytes(3)?;
        let nonce = get_bytes(4)?;
        let public_key = get_bytes(5)?;
        let (code, message, sealed) = (get_text(7)?, get_text(8)?, get_bytes(9)?);
        let status = match get_text(6)?.as_str() {
            "ok" if code.is_empty() && message.is_empty() && !sealed.is_empty() => {
                Status::Ok { sealed }
            }
            "rejected" if !code.is_empty() && sealed.is_empty() => {
                Status::Rejected { code, message }
            }
            _ => return Err(bad("inconsistent status")),
        };
        let p = ResponsePayload {
            timestamp_ms,
            request_digest,
            nonce,
            public_key,
            status,
        };
        if p.encode() != b {
            return Err(bad("non-canonical encoding"));
        }
        Ok(p)
    }
}

fn expected_protected(host: &VerifyingKey) -> Header {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(host.to_bytes().to_vec())
        .build()
}

/// Builds and signs the envelope (tagged COSE_Sign1, empty external AAD).
pub fn seal_envelope(host: &SigningKey, payload: &ResponsePayload) -> Vec<u8> {
    let protected = expected_protected(&host.verifying_key());
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload.encode())
        .create_signature(b"", |tbs| host.sign(tbs).to_bytes().to_vec())
        .build()
        .to_tagged_vec()
        .expect("COSE encoding cannot fail")
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    TooLarge(usize),
    Malformed(String),
    WrongSigner,
    BadSignature,
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::TooLarge(n) => {
                write!(f, "response of {n} bytes exceeds {MAX_RESPONSE_BYTES}")
            }
            EnvelopeError::Malformed(m) => write!(f, "malformed response envelope: {m}"),
            EnvelopeError::WrongSigner => write!(f, "response not signed by the expected host key"),
            EnvelopeError::BadSignature => write!(f, "response signature invalid"),
        }
    }
}
impl std::error::Error for EnvelopeError {}

/// Verifies the envelope strictly against the host key and returns its payload.
pub fn verify_envelope(
    host: &VerifyingKey,
    bytes: &[u8],
) -> Result<ResponsePayload, EnvelopeError> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(EnvelopeError::TooLarge(bytes.len()));
    }
    let mal = |m: &str| EnvelopeError::Malformed(m.to_string());
    let cose =
        CoseSign1::from_tagged_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    if cose
        .clone()
        .to_tagged_vec()
        .map_err(|_| mal("re-encoding failed"))?
        != bytes
    {
        return Err(mal("non-canonical encoding"));
    }
    if !cose.unprotected.is_empty() {
        return Err(mal("unprotected header must be empty"));
    }
    let expected = expected_protected(host);
    if cose.protected.header.key_id != expected.key_id {
        return Err(EnvelopeError::WrongSigner);
    }
    let canonical = ProtectedHeader {
        original_data: None,
        header: expected,
    }
    .cbor_bstr()
    .map_err(|_| mal("header"))?;
    if cose.protected.original_data.as_deref() != canonical.as_bytes().map(|v| v.as_slice()) {
        return Err(mal("protected header must be exactly {alg: EdDSA, kid}"));
    }
    let sig: [u8; 64] = cose
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| EnvelopeError::BadSignature)?;
    cose.verify_signature(b"", |_, tbs| {
        host.verify_strict(tbs, &Signature::from_bytes(&sig))
    })
    .map_err(|_| EnvelopeError::BadSignature)?;
    let payload = cose
        .payload
        .as_deref()
        .ok_or_else(|| mal("missing payload"))?;
    ResponsePayload::decode(payload).map_err(|e| EnvelopeError::Malformed(e.0))
}

/// For tools that only need to parse (not trust) an envelope.
pub fn parse_unverified(bytes: &[u8]) -> Option<CoseSign1> {
    CoseSign1::from_tagged_slice(bytes).ok()
}
